"""exotrace.records"""
