"""Every domain error maps to exactly one HTTP status (the problem+json answers are checked
against the running app in tests/foundation/test_errors.py)."""


def test_every_domain_error_has_one_status() -> None:
    from kalimera import errors as domain
    from kalimera.problems import STATUS, status_of

    kinds = [k for k in vars(domain).values() if isinstance(k, type) and issubclass(k, Exception)]
    assert set(kinds) - {domain.DomainError} == set(STATUS)
    assert status_of(domain.invalid(["body", "name"], "too long")) == 422
    assert domain.invalid(["body", "name"], "too long").errors == [
        {"loc": ["body", "name"], "msg": "too long"}
    ]
