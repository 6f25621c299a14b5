pub mod clock;
pub mod error;
pub mod keyspace;
pub mod protocol;
