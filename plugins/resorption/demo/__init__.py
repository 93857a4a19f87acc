"""Synthetic demonstration data: sites, resorption actions and organisations, all FICTIONAL.

Every site, person count, owner, court case, action, budget and organisation
written here is invented. Only the territories are real: sites stand at
random points inside real communes, in the départements where slums really
concentrate (Île-de-France, Nord, the large metropolitan areas of the south
and west, Mayotte and French Guiana), so that maps, filters and figures
behave as they would on real data. The data says it is fictional wherever a
user meets it: site and action references start with `DEMO-`, organisation
names end with « (démo) », and the console summary says so.

The generator is deterministic: the same seed and size give the same rows,
byte for byte, because every draw comes from one `random.Random(seed)`,
PostGIS draws the points with explicit seeds, and every date hangs on a fixed
reference day (`AS_OF`) instead of the clock. Running it again replaces the
previous demonstration data and leaves any other data alone.
"""

from resorption.demo.generate import generate_demo

__all__ = ["generate_demo"]
