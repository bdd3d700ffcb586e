"""Post-call analysis: plans per agent, versioned (docs/analysis.md)."""
