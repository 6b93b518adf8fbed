"""exotrace: keeps extracellular-vesicle products measured and traceable from donor to patient."""

__version__ = "0.1.0"
__all__ = ["__version__"]
