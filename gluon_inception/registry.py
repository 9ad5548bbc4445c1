"""One behaviour for registered names, shared by the model and the pretrained-weight registries."""
from .errors import UsageError


class UnknownNameError(UsageError):
    """No registered item has that name; the message lists the known ones."""


class Registry:
    """Items by name, in registration order; names are case-insensitive (stored in lower case).

    Parameters
    ----------
    kind : str
        What the items are, for messages (``"model"``).
    unknown : type, default UnknownNameError
        The error raised for an unknown name.
    hint : str, optional
        Appended to the message for an unknown name.

    Examples
    --------
    >>> from gluon_inception.registry import Registry
    >>> shapes = Registry("shape")
    >>> shapes.register("Square", 4)
    4
    >>> shapes.get("SQUARE"), shapes.names()
    (4, ['square'])
    >>> shapes.register("square", 5)
    Traceback (most recent call last):
    ValueError: shape name 'square' is already registered: pass overwrite=True or pick another name
    >>> shapes.unregister("square")
    4
    >>> shapes.get("square")
    Traceback (most recent call last):
    gluon_inception.registry.UnknownNameError: unknown shape 'square': known names are none
    """

    def __init__(self, kind, unknown=UnknownNameError, hint=""):
        self.kind, self.unknown, self.hint = kind, unknown, hint
        self._items = {}

    @staticmethod
    def key(name):
        """The stored form of ``name`` (lower case), or None when it is not a string."""
        return name.lower() if isinstance(name, str) else None

    def register(self, name, item, overwrite=False):
        """Store ``item`` as ``name``; returns ``item``. A taken name needs ``overwrite=True``."""
        key = self.key(name)
        if not key:
            raise ValueError("a %s name must be a non-empty string, got %r" % (self.kind, name))
        if key in self._items and not overwrite:
            raise ValueError(
                "%s name %r is already registered: pass overwrite=True or pick another name" % (self.kind, key)
            )
        self._items[key] = item
        return item

    def get(self, name):
        """The item called ``name``; raises :attr:`unknown` listing the known names."""
        try:
            return self._items[self.key(name)]
        except KeyError:
            raise self.unknown(
                "unknown %s %r: known names are %s%s" % (self.kind, name, ", ".join(self) or "none", self.hint)
            ) from None

    def unregister(self, name):
        """Remove and return the item called ``name`` (unknown names raise as :meth:`get` does)."""
        self.get(name)
        return self._items.pop(self.key(name))

    def names(self):
        """Registered names, in registration order."""
        return list(self._items)

    def values(self):
        """Registered items, in registration order."""
        return list(self._items.values())

    def __contains__(self, name):
        return self.key(name) in self._items

    def __iter__(self):
        return iter(list(self._items))

    def __len__(self):
        return len(self._items)
