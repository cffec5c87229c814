"""Where the configs live, the resolvers they use, and instantiation that turns config mistakes into one-line errors."""
