"""Legal persons: enterprises, their handlers, and agents acting for elders."""
