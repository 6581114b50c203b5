"""The faces of ButterflyFX: machine (API models and a Python client), human (CLI), AI."""
