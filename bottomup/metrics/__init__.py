"""Evaluation: BSDS boundaries (ODS/OIS/AP), regions (Covering/PRI/VI), proposals, semantic, instance."""
