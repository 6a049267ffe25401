"""Enrolment and credentials: 网号/网证, PINs, SMS codes, and mini-program account bindings."""
