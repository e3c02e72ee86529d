"""The library's error types (a leaf module: everything may import it)."""


class ConfigError(ValueError):
  """A config field (or flag) has an invalid value; the message starts with
  ``config.<field>:`` and names the allowed values where there is a list."""
