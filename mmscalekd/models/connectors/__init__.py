"""mmscalekd package."""
