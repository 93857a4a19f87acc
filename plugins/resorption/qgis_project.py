"""A ready QGIS project (.qgz) for analysts: the collections a user may read, styled like the web map.

The server has no QGIS: the project's XML (the .qgs format of QGIS 3) is written with the
standard library (`xml.etree.ElementTree`) and zipped into a .qgz. Each readable collection is
an OGC API Features layer (QGIS provider `OAPIF`) of this server, fetched by extent and page
(`restrictToRequestBBOX`, `pagingEnabled`), with the French title of the catalog as its name
and the French labels of its fields as aliases. Sites are categorised by status with the
colours of `styles.STATUS_COLOURS` and sized by `styles.POPULATION_CLASSES` (as on the web map); actions are
outlined footprints, territories boundaries. The project CRS is Lambert-93, or the overseas
CRS of a user whose area lies overseas. The layers carry an empty `authcfg`: each user
attaches their own authentication configuration (username and API token) in QGIS.
"""

from __future__ import annotations

import functools
import io
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from xml.etree import ElementTree as ET

from pyproj import CRS

from resorption import bulk, statements
from resorption.caller import Caller
from resorption.catalog import Collection, Field
from resorption.identity import Principal
from resorption.policy import Policy
from resorption.styles import OUTLINE_COLOUR, POPULATION_CLASSES, STATUS_COLOURS, UNKNOWN_POPULATION_RADIUS

SQL = statements.load("qgis_project")
QGIS_VERSION = "3.22.0-Białowieża"
LAMBERT_93 = 2154
# The CRS of each overseas département (shared/domain.md, crs.py).
OVERSEAS_CRS: Mapping[str, int] = {"971": 5490, "972": 5490, "973": 2972, "974": 2975, "976": 4471}
# Metropolitan France in Lambert-93, the view of national users.
FRANCE_L93 = (99_000.0, 6_040_000.0, 1_243_000.0, 7_110_000.0)
# Layers in drawing order (first on top), whether they show when the project opens, and the
# scale below which they draw (communes only when zoomed in: there are 35,000 of them).
LAYER_ORDER: tuple[tuple[str, bool, float], ...] = (
    ("sites", True, 0),
    ("actions", True, 0),
    ("communes", False, 250_000),
    ("departements", True, 0),
    ("regions", True, 0),
    ("stats_departements", False, 0),
    ("stats_regions", False, 0),
)
# Not map layers: the changelogs of sites and actions are lists of changes, read in the web pages; the
# journals are lists of messages, on the map's sheet (QGIS reads them through the server's
# OGC API connection all the same).
NOT_LAYERS = frozenset({"site_changes", "action_changes", "site_comments", "action_comments", "activity"})
# The page size of the layers follows the caller's export right (`page_size`): a page above
# the bulk threshold is an export (resorption.bulk). Whoever may export all it reads asks for
# big pages (the server reads them as exports: the same rows, fewer requests); anyone else
# asks for pages of the threshold, which the server serves as they are, neither reduced nor
# narrowed to an export area.
EXPORT_PAGE_SIZE = 5_000
ACTION_OUTLINE = "#6a3d9a"
BOUNDARY_COLOURS = {"communes": "#bdbdbd", "departements": "#757575", "regions": "#424242"}
BOUNDARY_WIDTHS = {"communes": 0.2, "departements": 0.4, "regions": 0.8}


@dataclass(frozen=True, slots=True)
class Layer:
    """One layer of the project: a collection, the fields its user reads, how it shows."""

    collection: Collection
    fields: tuple[Field, ...]
    visible: bool
    min_scale: float = 0


def project_srid(principal: Principal) -> int:
    """Lambert-93, or the CRS of the overseas département(s) the user's area lies in."""
    departements = principal.area_departements
    if not departements:
        return LAMBERT_93
    srids = {OVERSEAS_CRS.get(code, LAMBERT_93) for code in departements}
    return srids.pop() if len(srids) == 1 else LAMBERT_93


def page_size(policy: Policy, principal: Principal, bulk_threshold: int) -> int:
    """How many features QGIS asks for at a time: as many as the caller's export right allows."""
    if bulk.exports_all_it_reads(policy, principal):
        return max(bulk_threshold, EXPORT_PAGE_SIZE)
    return bulk_threshold


def readable_layers(policy: Policy, principal: Principal, catalog: Mapping[str, Collection]) -> list[Layer]:
    """The collections `principal` may read, as layers, in drawing order."""
    order = {name: i for i, (name, _, _) in enumerate(LAYER_ORDER)}
    settings = {name: (visible, scale) for name, visible, scale in LAYER_ORDER}
    layers = []
    for collection in sorted(catalog.values(), key=lambda c: (order.get(c.id, len(order)), c.id)):
        if collection.id in NOT_LAYERS or not policy.may_read(principal, collection):
            continue
        visible, scale = settings.get(collection.id, (False, 0))
        fields = policy.readable_fields(principal, collection)
        layers.append(Layer(collection, fields, visible, scale))
    return layers


# -- XML -----------------------------------------------------------------------------------


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: v for k, v in attributes.items()})
    if text is not None:
        element.text = text
    return element


@functools.cache
def _crs_parts(srid: int) -> tuple[str, str, str, bool]:
    crs = CRS.from_epsg(srid)
    return crs.to_wkt("WKT2_2019"), crs.to_proj4() or "", crs.name, crs.is_geographic


def spatialrefsys(parent: ET.Element, srid: int) -> ET.Element:
    """A `<spatialrefsys>` QGIS reads (WKT first, then the EPSG code)."""
    wkt, proj4, name, geographic = _crs_parts(srid)
    srs = _sub(parent, "spatialrefsys")
    _sub(srs, "wkt", wkt)
    _sub(srs, "proj4", proj4)
    _sub(srs, "srsid", "0")
    _sub(srs, "srid", str(srid))
    _sub(srs, "authid", f"EPSG:{srid}")
    _sub(srs, "description", name)
    _sub(srs, "geographicflag", "true" if geographic else "false")
    return srs


def _rgba(colour: str) -> str:
    """'#d7301f' → '215,48,31,255' (QGIS's colour notation)."""
    value = colour.lstrip("#")
    return ",".join(str(int(value[i : i + 2], 16)) for i in (0, 2, 4)) + ",255"


def _options(parent: ET.Element, values: Mapping[str, str]) -> None:
    """A symbol layer's properties, in both forms QGIS 3 reads (`Option` map and `prop`)."""
    option_map = _sub(parent, "Option", type="Map")
    for key, value in values.items():
        _sub(option_map, "Option", name=key, value=value, type="QString")
    for key, value in values.items():
        _sub(parent, "prop", k=key, v=value)


def _data_defined(parent: ET.Element, properties: Mapping[str, str]) -> None:
    """Data-defined overrides: property name → QGIS expression."""
    holder = _sub(_sub(parent, "data_defined_properties"), "Option", type="Map")
    _sub(holder, "Option", name="name", value="", type="QString")
    props = _sub(holder, "Option", name="properties", type="Map")
    for name, expression in properties.items():
        prop = _sub(props, "Option", name=name, type="Map")
        _sub(prop, "Option", name="active", value="true", type="bool")
        _sub(prop, "Option", name="expression", value=expression, type="QString")
        _sub(prop, "Option", name="type", value="3", type="int")  # an expression
    _sub(holder, "Option", name="type", value="collection", type="QString")


def population_size_expression(field: str = "population_total") -> str:
    """The symbol diameter (twice the web map's radius, in pixels) of each population class."""
    quoted = f'"{field}"'
    cases = [f"WHEN {quoted} IS NULL THEN {2 * UNKNOWN_POPULATION_RADIUS}"]
    for cls in POPULATION_CLASSES:
        if cls.maximum is None:
            cases.append(f"WHEN {quoted} >= {cls.minimum} THEN {2 * cls.radius}")
        else:
            cases.append(f"WHEN {quoted} <= {cls.maximum} THEN {2 * cls.radius}")
    return "CASE " + " ".join(cases) + f" ELSE {2 * UNKNOWN_POPULATION_RADIUS} END"


def _marker(symbols: ET.Element, name: str, colour: str) -> None:
    symbol = _sub(symbols, "symbol", name=name, type="marker", alpha="1", clip_to_extent="1", force_rhr="0")
    layer = _sub(symbol, "layer", **{"class": "SimpleMarker", "enabled": "1", "locked": "0", "pass": "0"})
    _options(
        layer,
        {
            "name": "circle",
            "color": _rgba(colour),
            "outline_color": _rgba(OUTLINE_COLOUR),
            "outline_style": "solid",
            "outline_width": "1",
            "outline_width_unit": "Pixel",
            "scale_method": "diameter",
            "size": str(2 * UNKNOWN_POPULATION_RADIUS),
            "size_unit": "Pixel",
        },
    )
    _data_defined(layer, {"size": population_size_expression()})


def _outline(symbols: ET.Element, colour: str, width: float) -> None:
    symbol = _sub(symbols, "symbol", name="0", type="fill", alpha="1", clip_to_extent="1", force_rhr="0")
    layer = _sub(symbol, "layer", **{"class": "SimpleFill", "enabled": "1", "locked": "0", "pass": "0"})
    _options(
        layer,
        {
            "style": "no",
            "color": _rgba(colour),
            "outline_color": _rgba(colour),
            "outline_style": "solid",
            "outline_width": str(width),
            "outline_width_unit": "MM",
        },
    )


def renderer(parent: ET.Element, layer: Layer) -> None:
    """How the layer draws: sites by status and population, the rest as outlines."""
    collection = layer.collection
    if collection.id == "sites" and "status" in {f.name for f in layer.fields}:
        status = collection.fields["status"]
        element = _sub(parent, "renderer-v2", type="categorizedSymbol", attr="status", **_renderer_flags())
        categories = _sub(element, "categories")
        symbols = _sub(element, "symbols")
        for index, code in enumerate(STATUS_COLOURS):
            _sub(
                categories,
                "category",
                value=code,
                symbol=str(index),
                label=status.enum.get(code, code),
                render="true",
            )
            _marker(symbols, str(index), STATUS_COLOURS[code])
        return
    element = _sub(parent, "renderer-v2", type="singleSymbol", **_renderer_flags())
    symbols = _sub(element, "symbols")
    if collection.geometry_type.endswith("Point"):
        _marker(symbols, "0", "#616161")
    elif collection.id == "actions":
        _outline(symbols, ACTION_OUTLINE, 0.6)
    else:
        _outline(
            symbols, BOUNDARY_COLOURS.get(collection.id, "#9e9e9e"), BOUNDARY_WIDTHS.get(collection.id, 0.3)
        )


def _renderer_flags() -> dict[str, str]:
    return {"forceraster": "0", "symbollevels": "0", "enableorderby": "0", "referencescale": "-1"}


def layer_id(collection: Collection) -> str:
    """A stable layer id (QGIS needs one unique in the project)."""
    return f"resorption_{collection.id}"


def datasource(base_url: str, collection: Collection, size: int) -> str:
    """The OAPIF provider's data source: this server, the collection, paged requests by extent."""
    url = base_url.rstrip("/").replace("\\", "\\\\").replace("'", "\\'")
    return (
        f"url='{url}' typename='{collection.id}' restrictToRequestBBOX='1' "
        f"pagingEnabled='true' pageSize='{size}' authcfg=''"
    )


def _maplayer(parent: ET.Element, base_url: str, layer: Layer, size: int) -> None:
    collection = layer.collection
    geometry = "Point" if collection.geometry_type.endswith("Point") else "Polygon"
    element = _sub(
        parent,
        "maplayer",
        type="vector",
        geometry=geometry,
        wkbType=collection.geometry_type,
        hasScaleBasedVisibilityFlag="1" if layer.min_scale else "0",
        minScale=str(layer.min_scale or 100_000_000),
        maxScale="0",
        styleCategories="AllStyleCategories",
        readOnly="0",
        labelsEnabled="0",
    )
    _sub(element, "id", layer_id(collection))
    _sub(element, "datasource", datasource(base_url, collection, size))
    _sub(element, "layername", collection.title.fr)
    spatialrefsys(_sub(element, "srs"), 4326)
    metadata = _sub(element, "resourceMetadata")
    _sub(metadata, "title", collection.title.fr)
    _sub(metadata, "abstract", collection.description.fr)
    _sub(element, "provider", "OAPIF", encoding="UTF-8")
    renderer(element, layer)
    aliases = _sub(element, "aliases")
    for index, f in enumerate(layer.fields):
        _sub(aliases, "alias", field=f.name, index=str(index), name=f.label.fr)


def build_qgs(
    base_url: str, layers: Sequence[Layer], srid: int, extent: Sequence[float], title: str, size: int
) -> bytes:
    """The project's XML (.qgs)."""
    root = ET.Element("qgis", {"version": QGIS_VERSION, "projectname": title})
    _sub(root, "homePath", path="")
    _sub(root, "title", title)
    spatialrefsys(_sub(root, "projectCrs"), srid)
    tree = _sub(root, "layer-tree-group")
    _sub(tree, "customproperties")
    for layer in layers:
        _sub(
            tree,
            "layer-tree-layer",
            id=layer_id(layer.collection),
            name=layer.collection.title.fr,
            providerKey="OAPIF",
            source=datasource(base_url, layer.collection, size),
            checked="Qt::Checked" if layer.visible else "Qt::Unchecked",
            expanded="1" if layer.collection.id == "sites" else "0",
        )
    project_layers = _sub(root, "projectlayers")
    for layer in layers:
        _maplayer(project_layers, base_url, layer, size)
    # QGIS reads <projectCrs> only when the project says it reprojects on the fly.
    properties = _sub(_sub(root, "properties"), "SpatialRefSys")
    _sub(properties, "ProjectionsEnabled", "1", type="int")
    xmin, ymin, xmax, ymax = (f"{v:.2f}" for v in extent)
    view = _sub(root, "ProjectViewSettings", UseProjectScales="0", rotation="0")
    _sub(view, "Scales")
    spatialrefsys(_sub(view, "DefaultViewExtent", xmin=xmin, ymin=ymin, xmax=xmax, ymax=ymax), srid)
    metadata = _sub(root, "projectMetadata")
    _sub(metadata, "title", title)
    _sub(metadata, "abstract", f"Couches OGC API – Features de {base_url.rstrip('/')} (Résorption).")
    _sub(metadata, "language", "fr")
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return ("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" + body + "\n").encode("utf-8")


def build_qgz(qgs: bytes, name: str = "projet") -> bytes:
    """The .qgz: a zip holding the .qgs."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{name}.qgs", qgs)
    return buffer.getvalue()


def project_title(principal: Principal) -> str:
    """The project's French title, naming the user's area."""
    if principal.area_level in (None, "nation"):
        return "Résorption des bidonvilles — France entière"
    return f"Résorption des bidonvilles — {principal.area_level} {principal.area_code}"


def area_extent(conn: object, principal: Principal, srid: int) -> tuple[float, float, float, float]:
    """Where the project opens: the user's départements, else metropolitan France."""
    if not principal.area_departements:
        return FRANCE_L93
    row = conn.execute(  # type: ignore[attr-defined]
        SQL.area_extent, {"srid": srid, "codes": sorted(principal.area_departements)}
    ).fetchone()
    if row is None or row[0] is None:
        return FRANCE_L93
    xmin, ymin, xmax, ymax = row
    margin = max(xmax - xmin, ymax - ymin) * 0.05
    return xmin - margin, ymin - margin, xmax + margin, ymax + margin


def project_for(caller: Caller, extent: Iterable[float], base_url: str | None = None) -> bytes:
    """The .qgz of the caller: their readable collections, their CRS, their area in view.

    The layers point at `base_url`, this server's public URL unless told otherwise.
    """
    principal, policy = caller.principal, caller.policy
    base_url = base_url or caller.settings.public_url
    srid = project_srid(principal)
    layers = readable_layers(policy, principal, caller.catalog)
    size = page_size(policy, principal, caller.settings.bulk_threshold)
    qgs = build_qgs(base_url, layers, srid, tuple(extent), project_title(principal), size)
    return build_qgz(qgs)


# Without a user: every collection and field, as a national administrator reads them.
EVERY_READER = Principal(username="qgis-project", role="national_admin", area_level="nation")


def project_of_user(database_url: str, base_url: str, username: str | None) -> bytes:
    """The project of `username` (or of a national reader), read as that caller.

    Raises InvalidParameter when the user does not exist or is inactive.
    """
    from resorption import settings as app_settings
    from resorption.authentication import principal_of_user
    from resorption.errors import InvalidParameter

    settings = app_settings.Settings.from_env(database_url)
    principal = EVERY_READER
    if username is not None:
        found = principal_of_user(username, settings)
        if found is None:
            raise InvalidParameter(
                f"L'utilisateur « {username} » n'existe pas ou n'est plus actif "
                "(voir « resorption users list »)."
            )
        principal = found
    caller = Caller.of(principal, settings)
    with caller.reading() as conn:
        extent = area_extent(conn, principal, project_srid(principal))
    return project_for(caller, extent, base_url)
