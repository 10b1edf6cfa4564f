"""pymeasure Procedures (installed as labctl.procedures)."""
