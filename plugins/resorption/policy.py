"""What a principal may read: the fields of a collection, filtered by sensitivity.

A field belongs to a group; a group marked `sensitive` (owner, justice,
finances) is readable only by principals granted it. Everything that reads
data asks here first, so that a forbidden property is treated exactly like
one that does not exist.
"""

from resorption.catalog import Collection, Field
from resorption.identity import Principal


def readable_fields(principal: Principal, collection: Collection) -> tuple[Field, ...]:
    """The fields of `collection` this principal may see, in catalog order."""
    return tuple(
        f
        for f in collection.fields.values()
        if f.group.sensitive is None or f.group.sensitive in principal.sensitive_groups
    )
