"""Files in and out: EM images and their metadata, info bars, masks, image-mask pairs (numpy only, no torch)."""

from .images import ImageReadError, as_grey, list_images, read_image, write_labels
from .infobar import InfoBar, detect_info_bar
from .masks import check_mask, instance_labels, read_mask

__all__ = ["ImageReadError", "as_grey", "list_images", "read_image", "write_labels", "InfoBar", "detect_info_bar",
           "check_mask", "instance_labels", "read_mask"]
