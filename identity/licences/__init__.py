"""E-licences (电子证照): my licences, 亮证 QR presentation, verification by verifier staff, the card image."""
