# SPDX-License-Identifier: EUPL-1.2
"""cartable: sovereign file storage, sync and share."""

__version__ = "0.1.0"
