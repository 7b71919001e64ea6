"""A fleet of ICWS sessions: one pipeline per account this replica holds."""
