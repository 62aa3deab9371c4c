"""Reading EM images and masks, pixel sizes and info bars (numpy only, no torch)."""

from .images import ImageReadError, as_grey, read_image, read_mask, write_labels
from .infobar import InfoBar, detect_info_bar

__all__ = ["ImageReadError", "as_grey", "read_image", "read_mask", "write_labels", "InfoBar", "detect_info_bar"]
