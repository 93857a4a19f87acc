"""The journal of a site or an action as our HTML sheets show it: its newest messages the
user may read (row-level security decides, through the one reader), with the labels of their
tags and visibility, and what the writing form offers. The site sheet of the map and the
action sheet both use it.
"""

from __future__ import annotations

from typing import Any

from resorption.caller import Caller
from resorption.query import FeatureQuery
from resorption.reader import FeatureReader
from resorption.web import display

# Its newest messages, at most this many (the API pages the rest).
JOURNAL_LIMIT = 100


def journal(caller: Caller, collection_id: str, parent_field: str, parent_id: int) -> dict[str, Any]:
    """The messages of `collection_id` (site_comments, action_comments) on one parent, newest first."""
    comments = caller.catalog[collection_id]
    reader = FeatureReader(caller, comments)
    fields = comments.fields
    page = reader.features(
        FeatureQuery(
            collection=comments,
            readable=reader.readable,
            equals=((fields[parent_field], parent_id),),
            sortby=((fields["created_at"], True), (fields["id"], True)),
            limit=JOURNAL_LIMIT,
            skip_geometry=True,
        )
    )
    tags = fields["tags"].enum or {}
    visibilities = fields["visibility"].enum or {}
    messages = []
    for feature in page.get("features", []):
        p = feature["properties"]
        messages.append(
            {
                **p,
                "id": feature["id"],
                "tag_labels": [tags.get(t, t) for t in p.get("tags") or []],
                "visibility_label": visibilities.get(p.get("visibility"), p.get("visibility")),
                "written": display.display_value(fields["created_at"], p.get("created_at"), "fr"),
            }
        )
    return {
        "messages": messages,
        "more": (page.get("numberMatched") or 0) > len(messages),
        "tags": list(tags.items()),
        "visibilities": list(visibilities.items()),
        "max_length": fields["message"].max_length,
    }
