"""exotrace.api"""
