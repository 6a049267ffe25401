"""Identity codes: the signed offline code format (codec), its QR rendering, SM2-signed documents, issue/verify."""
