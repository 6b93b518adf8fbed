"""exotrace.clinic"""
