"""A shared test helper: a deep copy of a nested dict/list with one entry changed or removed."""

import copy


def with_entry(tree, path, value):
    """A deep copy of ``tree`` with the entry at key ``path`` (a sequence of keys and indices) set to ``value``,
    or removed when ``value`` is ``...``."""
    changed = copy.deepcopy(tree)
    *parents, last = path
    holder = changed
    for key in parents:
        holder = holder[key]
    if value is ...:
        del holder[last]
    else:
        holder[last] = value
    return changed
