"""Overlay fabric, container attach, DNS and VIP/ingress (DESIGN.md §2)."""
