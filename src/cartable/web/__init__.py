# SPDX-License-Identifier: EUPL-1.2
"""The browser side: for now the home page at ``/`` and the ``/.well-known`` redirects."""
