"""Test servers the suite starts itself, unless a URL in the environment names one."""
