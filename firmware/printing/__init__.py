"""Ticket printing: template → layout (Pillow) → ESC/POS bytes → issuance path."""
