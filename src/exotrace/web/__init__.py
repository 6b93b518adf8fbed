"""exotrace.web"""
