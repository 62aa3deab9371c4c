"""Per-particle measurements in physical units and size-distribution summaries (:mod:`.table`: the
measures and their definitions, summaries, CSV and figures; :mod:`.files`: one label file's table)."""

from .files import measure_file
from .table import (LENGTH_COLUMNS, LOGNORMAL_POOR_P, PLOT_FORMATS, PLOT_LENGTHS, PLOT_NAMES, Measurements,
                    bin_edges, column_and_unit, convex_hull, convex_pixel_count, drop_doubtful,
                    equivalent_diameters, feret_diameters, has_confidence, lognormal_curve, lognormal_fit,
                    lognormal_p, measure_particles, median_diameter, row_extremes, size_figure, stack_tables,
                    summarize_sizes, weighted_percentiles, write_size_plot, write_summary_csv, write_table_csv)

__all__ = ["LENGTH_COLUMNS", "LOGNORMAL_POOR_P", "PLOT_FORMATS", "PLOT_LENGTHS", "PLOT_NAMES", "Measurements",
           "bin_edges", "column_and_unit", "convex_hull", "convex_pixel_count", "drop_doubtful",
           "equivalent_diameters", "feret_diameters", "has_confidence", "lognormal_curve", "lognormal_fit",
           "lognormal_p", "measure_file", "measure_particles", "median_diameter", "row_extremes", "size_figure",
           "stack_tables", "summarize_sizes", "weighted_percentiles", "write_size_plot", "write_summary_csv",
           "write_table_csv"]
