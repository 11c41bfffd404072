//! Runtime service of a baseimg appliance (discovery, pairing, management API).
