"""Trees for UniFrac: from a Newick file, a taxonomy table, or TCMA's NCBI lineage table.

UniFrac needs a rooted tree whose tips are the table's taxa. Three sources:

- :func:`read_newick_tree`: a user's Newick file (tips named by taxon id).
- :func:`tree_from_tcma_taxonomy`: TCMA's lineage table ``tax_table.bacteria.ids.txt`` (one row per
  NCBI taxon; taxids per rank, float-formatted like ``"1224.0"``). TCMA's own Newick files
  (``taxa.bacteria.<rank>.nw``) hold one rank each, with internal nodes all named ``1``, so they cannot
  place the 106 features, which span superkingdom to species; the lineage table can.
- :func:`tree_from_taxonomy`: a table's own taxonomy (columns Kingdom ... Species, optional ``rank``).

The taxonomy trees are *taxonomic*, not phylogenetic: one node per named taxon, and each branch is as
long as the rank levels it spans (phylum -> class = 1, phylum -> subphylum = 0.5; the levels of
:data:`pydepmicro.evaluate.masks._RANK_LEVEL`), so every taxon of a rank sits at the same depth and a
skipped rank (a genus without a family in NCBI) keeps the full length. The root sits one level above
superkingdom.

Nested features (a genus and its species both columns of the table, as in TCMA): a feature whose
node has other features below it becomes a tip on a **zero-length branch** under its own node. Its
reads then count on every branch down to its rank and on no deeper one, which is what a genus-level
assignment says; the species below it keep their own branches. A feature with no feature below it is
the node itself (the tip at the end of its branch). The alternatives are worse: dropping nested
features loses columns the generator must reproduce, and hanging them on a positive-length branch
invents a lineage that does not exist. Note that a nested feature's reads are (in TCMA) largely the
sum of its children's, so such trees weight those lineages twice; this is a property of the table,
the same for real and synthetic samples, and UniFrac is only compared between them.

All return a rooted :class:`skbio.TreeNode` whose tip names are exactly ``taxa_ids`` (str) and whose
root has at most two children (scikit-bio's test for "rooted").
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import IdMismatchError, InputFormatError, InvalidOptionError, UnreadableFileError, examples
from .masks import _RANK_LEVEL

_LINEAGE_IDS = "tax_table.bacteria.ids.txt"


def _taxid(value) -> str | None:
    """NCBI taxid as a plain integer string ("2.0" -> "2"); None when empty."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value).strip()
    if not text or text.lower() == "nan":
        return None
    try:
        return str(int(float(text)))
    except ValueError:
        return text


def _finish(root, taxa_ids: list[str]):
    """Prune to ``taxa_ids``, fill lengths, make sure the root has at most two children."""
    from skbio import TreeNode

    tips = {t.name for t in root.tips()}
    absent = [t for t in taxa_ids if t not in tips]
    if absent:
        raise IdMismatchError(f"the tree lacks {examples(absent)} of the table's taxa",
                              hint="give a tree with one tip per taxon id (or one that names the taxa)")
    if len(tips) > len(set(taxa_ids)):
        root = root.shear(taxa_ids)
    missing_len = [n for n in root.traverse(include_self=False) if n.length is None]
    if missing_len:
        warnings.warn(f"{len(missing_len)} tree branches have no length; they are given length 1",
                      stacklevel=3)
        for n in missing_len:
            n.length = 1.0
    root.prune()  # merge single-child nodes (sums lengths; UniFrac distances are unchanged)
    if len(root.children) > 2:
        for child in root.children:
            if child.length is None:
                child.length = 1.0
        root.length = 0.0
        root = TreeNode(name="root", children=[root])
    root.length = None
    return root


def _build(paths: dict[str, list[tuple[str, float]]], taxa_ids: list[str]):
    """A tree from one top-down path of (node key, rank level) per taxon; see the module doc."""
    from skbio import TreeNode

    root = TreeNode(name="root")
    nodes: dict[str, TreeNode] = {}
    levels: dict[str, float] = {}
    for taxon in taxa_ids:
        parent, parent_level = root, -1.0
        for key, level in paths[taxon]:
            node = nodes.get(key)
            if node is None:
                node = TreeNode(name=f"node:{key}", length=max(level - parent_level, 0.0))
                parent.append(node)
                nodes[key], levels[key] = node, level
            parent, parent_level = node, levels[key]
    own: dict[str, list[str]] = {}
    for taxon in taxa_ids:
        own.setdefault(paths[taxon][-1][0], []).append(taxon)
    for key, members in own.items():
        node = nodes[key]
        if len(members) == 1 and not node.children:
            node.name = members[0]
        else:
            for taxon in members:
                node.append(TreeNode(name=taxon, length=0.0))
    # internal nodes that are no feature and have no feature below them cannot occur: every node
    # lies on some feature's path
    return _finish(root, taxa_ids)


def tree_from_tcma_taxonomy(folder, taxa_ids):
    """Taxonomic tree of NCBI taxids from TCMA's lineage table.

    Parameters
    ----------
    folder : str or Path
        The folder holding ``tax_table.bacteria.ids.txt`` (``../shared/data/tcma/taxonomy``), or the
        TCMA folder above it.
    taxa_ids : sequence of str, length n_taxa
        NCBI taxids of the features (``"2"`` or ``"2.0"``); the tree's tips carry these exact strings.

    Returns
    -------
    skbio.TreeNode
        Rooted; tips = ``taxa_ids``. Branch lengths in rank levels (see the module doc).

    Raises
    ------
    UnreadableFileError, InputFormatError
        No or a malformed lineage table.
    IdMismatchError
        A taxid that the lineage table does not hold (named, with the fix).
    """
    folder = Path(folder)
    path = folder / _LINEAGE_IDS
    if not path.is_file() and (folder / "taxonomy" / _LINEAGE_IDS).is_file():
        path = folder / "taxonomy" / _LINEAGE_IDS
    if not path.is_file():
        raise UnreadableFileError(f"no TCMA lineage table {_LINEAGE_IDS} here", path=str(folder),
                                  hint="point --tcma-taxonomy at ../shared/data/tcma/taxonomy")
    try:
        table = pd.read_csv(path, sep="\t", index_col=0, dtype=str)
    except (ValueError, pd.errors.ParserError) as exc:
        raise InputFormatError(f"not a TCMA lineage table ({exc})", path=str(path),
                               hint="expected tab-separated taxid, superkingdom, phylum, ... columns") from exc
    ranks = [c for c in table.columns if str(c).strip().lower() in _RANK_LEVEL]
    if not ranks:
        raise InputFormatError("the lineage table has no rank columns", path=str(path),
                               hint="expected columns superkingdom, phylum, class, ..., species")
    ids = table[ranks].apply(lambda col: col.map(_taxid)).to_numpy(dtype=object)  # (n_rows, n_ranks)
    level = [_RANK_LEVEL[str(c).strip().lower()] for c in ranks]
    taxa = [str(t) for t in taxa_ids]
    paths: dict[str, list[tuple[str, float]]] = {}
    absent = []
    for taxon in taxa:
        key = _taxid(taxon)
        hits = np.argwhere(ids == key)
        if not len(hits):
            absent.append(taxon)
            continue
        row, col = hits[0]
        lineage = [(ids[row, c], level[c]) for c in range(col + 1) if ids[row, c] is not None]
        paths[taxon] = lineage
    if absent:
        raise IdMismatchError(f"the TCMA lineage table lacks {examples(absent)} of the table's taxa",
                              path=str(path),
                              hint="the table's taxon ids must be NCBI taxids; or give a Newick tree (--tree)")
    return _build(paths, taxa)


def tree_from_taxonomy(taxonomy: pd.DataFrame, taxa_ids):
    """Taxonomic tree from lineage names (columns Kingdom ... Species, optional ``rank``).

    A taxon's own node is its ``rank`` column's level when given, else its deepest filled lineage
    column. Nodes are keyed by their whole lineage path, so equal names under different parents
    stay apart.

    Parameters
    ----------
    taxonomy : DataFrame, shape (n_taxa, n_ranks)
        Index = taxon ids.
    taxa_ids : sequence of str, length n_taxa

    Returns
    -------
    skbio.TreeNode
        Rooted; tips = ``taxa_ids``.

    Raises
    ------
    InvalidOptionError
        No lineage column.
    IdMismatchError
        Taxa without a taxonomy row or with an empty lineage.
    """
    if not isinstance(taxonomy, pd.DataFrame):
        raise InvalidOptionError("taxonomy must be a DataFrame (one row per taxon)")
    frame = taxonomy.copy()
    frame.index = pd.Index(frame.index.astype(str))
    taxa = [str(t) for t in taxa_ids]
    lacking = [t for t in taxa if t not in frame.index]
    if lacking:
        raise IdMismatchError(f"the taxonomy lacks {examples(lacking)} of the table's taxa",
                              hint="give one taxonomy row per taxon, or a Newick tree (--tree)")
    cols = [(c, _RANK_LEVEL[str(c).strip().lower()]) for c in frame.columns
            if str(c).strip().lower() in _RANK_LEVEL and str(c).strip().lower() != "rank"]
    cols.sort(key=lambda x: x[1])
    if not cols:
        raise InvalidOptionError(f"the taxonomy has no lineage column (columns: {list(frame.columns)})",
                                 hint="give columns named Kingdom, Phylum, Class, Order, Family, Genus, Species")
    rank_col = next((c for c in frame.columns if str(c).strip().lower() == "rank"), None)
    paths: dict[str, list[tuple[str, float]]] = {}
    empty = []
    for taxon in taxa:
        row = frame.loc[taxon]
        own = None
        if rank_col is not None and isinstance(row[rank_col], str):
            own = _RANK_LEVEL.get(row[rank_col].strip().lower())
        path, prefix = [], ""
        for col, lv in cols:
            value = row[col]
            if own is not None and lv > own:
                break
            if value is None or (not isinstance(value, str) and pd.isna(value)) or not str(value).strip():
                continue
            prefix = f"{prefix}|{str(value).strip().lower()}"
            path.append((prefix, lv))
        if not path:
            empty.append(taxon)
        paths[taxon] = path
    if empty:
        raise IdMismatchError(f"{examples(empty)} taxa have an empty lineage, so they have no place in the tree",
                              hint="fill their taxonomy or give a Newick tree (--tree)")
    return _build(paths, taxa)


def read_newick_tree(tree, taxa_ids):
    """Read a Newick tree (path or TreeNode) and fit it to ``taxa_ids``.

    Tips not in the table are sheared off. A taxon that names an *internal* node (a genus whose
    species are tips) becomes a tip on a zero-length branch under that node, as in the taxonomy trees.
    Branches without a length get length 1 (with a warning).

    Raises
    ------
    UnreadableFileError, InputFormatError
        The file is missing or is not Newick.
    IdMismatchError
        Taxa that are neither tips nor internal nodes of the tree (named, with the fix).
    """
    from skbio import TreeNode

    if isinstance(tree, TreeNode):
        root = tree.copy()
        source = None
    else:
        source = str(tree)
        path = Path(tree)
        if not path.is_file():
            raise UnreadableFileError("the tree file does not exist", path=source,
                                      hint="give a Newick file whose tips are the table's taxon ids")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # skbio's format sniffer warns before it fails
                root = TreeNode.read(source, format="newick")
        except Exception as exc:  # skbio raises several types for bad Newick
            raise InputFormatError(f"not a readable Newick tree ({type(exc).__name__}: {exc})", path=source,
                                   hint="give a Newick file whose tips are the table's taxon ids") from exc
    taxa = [str(t) for t in taxa_ids]
    tip_names = {t.name for t in root.tips()}
    for node in list(root.non_tips(include_self=True)):
        if node.name in taxa and node.name not in tip_names:
            name = node.name
            node.name = f"node:{name}"
            node.append(TreeNode(name=name, length=0.0))
    try:
        return _finish(root, taxa)
    except IdMismatchError as exc:
        raise IdMismatchError(exc.problem, path=source, hint=exc.hint) from None


def table_tree(table, *, tree=None, tcma_taxonomy=None):
    """The tree UniFrac uses for ``table``, and why there is none when there is none.

    Order: an explicit ``tree`` (Newick path or TreeNode); ``tcma_taxonomy`` (TCMA lineage folder);
    the table's own taxonomy. Errors in an explicitly given source are raised; a table without any
    tree source gives ``(None, reason)``.

    Returns
    -------
    (skbio.TreeNode or None, str)
        The tree and a one-line description of where it came from (or why UniFrac is skipped).
    """
    taxa = list(table.taxa_ids)
    if tree is not None:
        where = tree if isinstance(tree, (str, Path)) else "a TreeNode"
        return read_newick_tree(tree, taxa), f"Newick tree {where}"
    if tcma_taxonomy is not None:
        return tree_from_tcma_taxonomy(tcma_taxonomy, taxa), f"TCMA lineage table in {tcma_taxonomy}"
    if table.taxonomy is not None:
        try:
            return tree_from_taxonomy(table.taxonomy, taxa), "the table's taxonomy (taxonomic tree)"
        except (IdMismatchError, InvalidOptionError) as exc:
            return None, f"no tree: the table's taxonomy cannot place every taxon ({exc.problem})"
    return None, "no tree: the table has no taxonomy and neither --tree nor --tcma-taxonomy was given"
