"""exotrace.instruments"""
