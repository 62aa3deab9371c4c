"""Configuration of the segmenter, its post-processing and the classical baseline."""

from __future__ import annotations

from dataclasses import dataclass

from .base import Choice, Config, coerce

#: Typical particle diameter (px) the shipped segmenters work best at: the median
#: equivalent-circle diameter of the BAM training particles. With
#: ``segment(..., diameter=D)`` an image is resized by ``MODEL_DIAMETER_PX / D`` first.
MODEL_DIAMETER_PX = 24.0
#: Smallest resize factor a particle diameter makes: going below 1/8 lowered foreground IoU.
MIN_RESIZE = 1 / 8
#: A given diameter under the model's / ``ENLARGE_BELOW`` (12 px) enlarges the image, by at
#: most ``MAX_ENLARGE``: particles under about 12 px are not found at the image's own scale.
#: At their annotated diameter (``python -m bench.small_particles``), on the two EMPS test
#: images of such particles none of 14 was found at the image's own scale and all 14 with a
#: 2x enlargement (and 24 false ones); 3x and 4x added more false particles (background
#: texture, figure text), and on the val images of 15-16 px particles 2x found more but not
#: better (``--enlarge-below 16``).
ENLARGE_BELOW = 2.0
MAX_ENLARGE = 2.0
#: An *estimated* diameter under this (px, for a network of ``MODEL_DIAMETER_PX``; in proportion
#: for one made to see other sizes) enlarges the image as a given one would; 0: an estimate never
#: enlarges. ``python -m bench.auto_enlarge`` makes the small-particle images
#: that the data lack (val and test images shrunk to particles of 5-11 px): pooled F1 0.39 /
#: 0.39 (val / test) at their own scale, 0.63 / 0.71 enlarged for the estimate, 0.69 / 0.73
#: for the annotated diameter (docs/benchmarks.md, "Particle diameter estimate"). The cost, on the 94 val and test images as they are: one of
#: 56-px particles estimated 9.6 px (F1 0.12 at any estimated scale) is cut into 94 pieces,
#: while the two of 9.9 and 9.5 px go from F1 0 to 0.62 and 0.40.
AUTO_ENLARGE_BELOW = 12.0
#: An image enlarged for an estimate is segmented again at its own scale when the particles
#: found on it have a median diameter of this many px (of the image itself; in proportion, as
#: ``AUTO_ENLARGE_BELOW``) or more: they are
#: not small, and the enlargement cut them up (a grainy matrix's 20-px particles estimated
#: 10.5 px: 15.8 px found; the shrunk val and test images' particles: 7.7-12.3 px found).
AUTO_ENLARGE_KEEP_BELOW = 15.0
#: An image is enlarged only as far as this many pixels (specimen rows) allow.
MAX_ENLARGED_PIXELS = 64_000_000
#: An estimated diameter shrinks the image only when at least this many times the model's:
#: estimates are rough, and a too-small image hurts more than a too-large one. The networks
#: train on particles of about 18-32 px (24 px, scale jitter 0.75-1.33), so estimates of 30 px
#: and more shrink: at 1.25 against 1.5, EMPS val F1 0.862 -> 0.867 through ``auto`` (BAM
#: unchanged), and a model trained without bright-particle images scores that family val F1
#: 0.44 -> 0.52, test 0.68 -> 0.68 (``python -m bench.leave_family_out --evaluate-only
#: --fit-size``).
AUTO_MIN_RATIO = 1.25
#: An image shrunk for an *estimated* diameter is also segmented at ``SCALE_STEP`` times
#: that scale and ``1 / SCALE_STEP`` of it (never larger than its own). The larger scale is
#: taken where its particles' mean confidence is at most ``SCALE_TOLERANCE`` below the
#: current one's, the smaller one only where it is ``SCALE_SHRINK_MARGIN`` above (and beats
#: the larger one, which needs ``SCALE_MARGIN`` to count as surer): an image shrunk too far
#: merges neighbours into particles the network is just as sure of. The search goes on in
#: that direction for at most ``SCALE_MOVES`` steps. Size estimates
#: fail on kinds of image the size model never saw (1.6-4 times too large on an outside
#: set); the network's own confidence says which scale suits it. Chosen on the val images
#: at scales 1.4, 2 and 2.8 times off their annotated diameter (docs/benchmarks.md, "Scale
#: check").
SCALE_STEP = 2**0.5
SCALE_MARGIN = 0.01
SCALE_SHRINK_MARGIN = 0.02
SCALE_TOLERANCE = 0.01
SCALE_MOVES = 2
#: An image enlarged for an *estimated* diameter is also segmented at its own scale, which is
#: kept where its particles' mean confidence is more than ``SCALE_ENLARGE_MARGIN`` above the
#: enlarged image's (the same network): an estimate far too small (noisy or unfamiliar images,
#: whose size features resemble those of small particles) cuts each particle into doubtful
#: pieces. Real images of particles of 5-11 px, rightly enlarged, were at most 0.053 surer at
#: their own scale (val copies); 6 of 11 domain-randomised images of 20-38 px particles
#: estimated at about 10 px, 0.096-0.23; the other 5 at most 0.054, and they stay enlarged
#: (docs/benchmarks.md, "Scale check").
SCALE_ENLARGE_MARGIN = 0.08
#: An image kept at its own scale for an *estimated* diameter (12-30 px), whose particles the
#: network is unsure of (mean confidence under ``SCALE_OWN_BELOW``), is also segmented
#: ``SCALE_STEP`` times smaller, which is kept where its mean confidence is more than
#: ``SCALE_OWN_MARGIN`` higher (the search then goes on as for a shrunk image): an estimate
#: of 20-28 px for particles of 40-95 px cuts them into pieces. Real images left at their own
#: scale were at most 0.012 surer 1.4 times smaller (val) and the BAM training fields up to
#: 0.072 (F1 0.84 -> 0.90); sure images (the BAM fields, mostly) pay no extra pass
#: (docs/benchmarks.md, "Scale check").
SCALE_OWN_BELOW = 0.83
SCALE_OWN_MARGIN = 0.04
#: Where the network is unsure of the particles it found (mean confidence under
#: ``POLARITY_UNSURE_BELOW``), the image is also segmented with its grey levels inverted (bright
#: particles made dark, the reverse), at the same scale, and that is kept where it finds at
#: least ``POLARITY_MORE`` times as many particles with a mean confidence more than
#: ``POLARITY_MARGIN`` higher: the training images hold more dark particles (bright-field TEM)
#: than bright ones, and small bright HAADF rods and particles the network misses it finds once
#: inverted. Inverted SEM agglomerates merge along their contact lines into fewer particles
#: the network is as sure of, hence the count. The six domain-randomised images it lifts were
#: at most 0.78 sure as they are; the procedural sample image (0.89) pays no extra pass
#: (docs/benchmarks.md, "Polarity check").
POLARITY_UNSURE_BELOW = 0.85
POLARITY_MARGIN = 0.04
POLARITY_MORE = 1.2
#: A particle with ``INK_SHARE`` or more of its pixels at the image's lowest or highest grey
#: level is a mark burnt into the figure (scale bar, letter, label box) and is dropped, unless
#: the median particle has ``CLIPPING_SHARE`` or more of its pixels there (the detector's
#: clipping). On the val images, each particle so dropped was a mark and none was annotated
#: (at 0.35 one BAM particle with a clipped core would have gone): docs/benchmarks.md, "Marks burnt
#: into a figure".
INK_SHARE = 0.5
CLIPPING_SHARE = 0.05
#: Around a scale bar found in the image (:func:`napari_nanogan.io.scalebar.find_scale_bar`), a particle
#: lying wholly (9/10) in its label's zone with ``SCALE_BAR_INK_SHARE`` or more of its pixels at the bar's
#: level (its label's letters, drawn alike) is a mark too. On the EMPS images every annotated particle in
#: such a zone had 0.2 % or less of its pixels at that level (7 of 8,927); the false particles found there on
#: the val and test images 50-100 % (7 of 8).
SCALE_BAR_INK_SHARE = 0.2
#: The zone reaches this share of the bar's length above and below it (at least 3 times its thickness and
#: 24 px), and three tenths of it beyond either end. Set on the EMPS training figures' saved predictions
#: (at 0.5, 14 false particles in the larger zone against 1 real one; 0 of the 8,927 annotated particles
#: there with a fifth of their pixels at the bar's level), checked on val and test (2 and 2 false, 0 real):
#: a label written well above its bar, in letters taller than the bar is thick.
SCALE_BAR_ZONE_HEIGHT = 0.5
#: Tile side (px) of tiled segmentation, the CLI's and the panel's default.
TILE = 512
#: Core side (px) of a block of an image segmented block by block (zarr inputs larger than memory).
BLOCK = 2048
#: Smallest margin (px) of neighbouring pixels a block is segmented with.
MIN_MARGIN = 128
#: The default margin is at least this many particle diameters.
MARGIN_DIAMETERS = 3


class Norm(Choice):
    GROUP = "group"
    BATCH = "batch"


class SeedMethod(Choice):
    COMPONENTS = "components"
    PEAKS = "peaks"
    DISTANCE = "distance"
    COMBINED = "combined"


class Polarity(Choice):
    BRIGHT = "bright"
    DARK = "dark"
    MINORITY = "minority"


@dataclass(frozen=True)
class SegmenterConfig(Config):
    """Architecture of the Attention U-Net segmenter.

    Attributes
    ----------
    base_channels : int
        Feature channels at full resolution; doubled at each level.
    depth : int
        Number of resolution levels (``depth - 1`` poolings).
    out_channels : int
        Output maps: 0 = particle foreground logit, 1 = particle interior (seed) logit.
    norm : Norm
        ``"group"`` (default) or ``"batch"`` normalisation. Group norm, because batch
        norm's running statistics, gathered over small batches that mix SEM (dark
        background) and TEM (bright background) patches, fit neither domain at
        inference: on the BAM validation images eval-mode batch norm gave IoU 0.65
        where the same weights with per-tile statistics gave 0.84.
    """

    base_channels: int = 16
    depth: int = 4
    out_channels: int = 2
    norm: Norm = Norm.GROUP

    def __post_init__(self):
        coerce(self, "norm", Norm)

    @property
    def multiple(self) -> int:
        """Input sides must be a multiple of this (padding is added by inference)."""
        return 2 ** (self.depth - 1)


@dataclass(frozen=True)
class PostprocessConfig(Config):
    """Turning probability maps into one label per particle.

    Attributes
    ----------
    fg_threshold : float
        Foreground probability above which a pixel belongs to a particle.
    seed_threshold : float
        Interior probability above which a pixel is a particle seed.
    min_seed_area : int
        Seeds smaller than this (pixels) are dropped as noise.
    min_area : int
        Particles smaller than this (pixels) are removed.
    seed_method : SeedMethod
        ``"components"``: each 4-connected blob of interior probability above
        ``seed_threshold`` is a seed; ``"peaks"``: local maxima of the interior
        probability (smoothed by ``smooth_sigma``) at least ``min_distance`` apart;
        ``"distance"``: local maxima of the foreground's distance transform (the
        classical split, ignoring the interior map); ``"combined"``: local maxima of
        the mean of the interior probability and the normalised distance transform.
    smooth_sigma : float
        Gaussian smoothing (pixels) of the interior map before seeding and flooding.
    min_distance : int
        Smallest distance between two peak seeds (``"peaks"`` only).
    merge_depth : float
        After the watershed, neighbouring regions of one component are merged when
        the pass between them (the highest relief on their shared border) lies less
        than this below the lower of their two peaks: a particle whose interior
        probability dips in the middle gave it two seeds, but no real boundary
        separates them (merging by dynamics). 0 (default) merges nothing. In units of
        the relief: interior probability, or the normalised depth for distance seeds.
    merge_interior : float
        Then neighbours are also merged when the interior probability (unsmoothed)
        stays at least this high across their border: the network sees one particle's
        core there. A rod thicker at its ends gets two seeds from its depth, but its
        interior runs through it unbroken. 0 (default) merges nothing more.
    min_confidence : float
        Particles whose confidence in each pass (the probability that they are real, from
        the maps-only model; see :mod:`napari_nanogan.segmentation.confidence`) is below
        this are dropped. 0 (default) keeps every particle; ``nanogan fit-confidence``
        chooses it on validation images. A final confidence model has its own threshold.
    """

    fg_threshold: float = 0.5
    seed_threshold: float = 0.5
    min_seed_area: int = 4
    min_area: int = 16
    seed_method: SeedMethod = SeedMethod.COMPONENTS
    smooth_sigma: float = 0.0
    min_distance: int = 5
    merge_depth: float = 0.0
    merge_interior: float = 0.0
    min_confidence: float = 0.0

    def __post_init__(self):
        coerce(self, "seed_method", SeedMethod)


@dataclass(frozen=True)
class ClassicalConfig(Config):
    """Parameters of the classical baseline (:func:`~napari_nanogan.segmentation.classical.otsu_watershed`).

    Attributes
    ----------
    sigma : float
        Gaussian smoothing before thresholding (pixels).
    polarity : Polarity
        ``"bright"`` particles (SEM), ``"dark"`` particles (bright-field TEM) or
        ``"minority"``: the thresholded class covering less area.
    min_distance : int
        Smallest distance between two particle centres (pixels).
    min_area : int
        Particles smaller than this are removed.
    """

    sigma: float = 1.0
    polarity: Polarity = Polarity.BRIGHT
    min_distance: int = 5
    min_area: int = 16

    def __post_init__(self):
        coerce(self, "polarity", Polarity)
