"""Dev-only code, left out of the deployment by ``.funcignore``: the local stack, ``kalimera run``
(the API under uvicorn with stand-ins for the blob and timer triggers), the demo seeder.

Nothing outside this package imports it but ``kalimera/cli.py`` (which ``.funcignore`` leaves
out too); ``tests/foundation/test_deployment.py`` proves the deployed files import without it.
"""
