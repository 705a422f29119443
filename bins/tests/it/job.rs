//! One job, whatever the user does: concurrent runs, another directory, a lost ledger, leftovers.
