"""The bridge between the kernel and the plugins: hook specs, contracts and services.

It imports the kernel, pluggy and pydantic; never Quart or a database driver.
"""
