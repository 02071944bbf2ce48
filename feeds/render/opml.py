"""OPML 2.0 subscription list: one outline per feed, nested like the categories."""

from __future__ import annotations

from datetime import datetime


def render_opml(title: str, owner: str, docs_url: str, updated: datetime, tree: list[dict], groups: list[tuple[str, list[dict]]], site_feed: dict) -> bytes:
    """tree/groups nodes: {"text", "xmlUrl", "htmlUrl", "type", "children": [...]}."""
    # imported here (17 ms): a rebuild renders the list again only when a
    # feed is added or removed
    import xml.etree.ElementTree as ET
    from email.utils import format_datetime

    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    ET.SubElement(head, "dateCreated").text = format_datetime(updated, usegmt=True)
    ET.SubElement(head, "dateModified").text = format_datetime(updated, usegmt=True)
    ET.SubElement(head, "ownerName").text = owner
    body = ET.SubElement(root, "body")

    def add(parent, node: dict) -> None:
        attrs = {"text": node["text"], "title": node["text"], "type": node["type"], "xmlUrl": node["xmlUrl"], "htmlUrl": node["htmlUrl"]}
        outline = ET.SubElement(parent, "outline", attrs)
        for child in node.get("children", ()):
            add(outline, child)

    add(body, site_feed)
    for node in tree:
        add(body, node)
    for label, nodes in groups:
        if not nodes:
            continue
        folder = ET.SubElement(body, "outline", {"text": label})
        for node in nodes:
            add(folder, node)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"
