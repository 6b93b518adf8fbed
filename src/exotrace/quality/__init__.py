"""exotrace.quality"""
