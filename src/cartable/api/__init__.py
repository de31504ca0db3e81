# SPDX-License-Identifier: EUPL-1.2
"""The native JSON API under /api/v1/ (api/app.py): for now the sync API's changes feed."""
