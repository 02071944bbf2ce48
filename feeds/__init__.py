"""feeds: publish Hexo-style posts as Atom, RSS and JSON feeds."""

__version__ = "0.1.0"
