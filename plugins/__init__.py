"""The built-in plugins, one package each; a plugin never imports another plugin."""
