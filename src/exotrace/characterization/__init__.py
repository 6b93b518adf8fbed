"""exotrace.characterization"""
