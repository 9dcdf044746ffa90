"""KServe transformer: raw records in, validated and vectorised with the shared feature spec, labels out."""
