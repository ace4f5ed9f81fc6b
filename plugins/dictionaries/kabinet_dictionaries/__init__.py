"""Kabinet dictionaries app:

reference data and documents whose structure admins define at run time.
"""

__version__ = "0.1.0"
