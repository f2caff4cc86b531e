"""Face detection: a 12/24/48 CNN cascade with 45-pattern calibration nets, NMS, crops."""
