//! capstan-patch (being written)
