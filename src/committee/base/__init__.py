"""What every stage needs: errors a user can act on, console logging, atomic file writes, machine facts."""
