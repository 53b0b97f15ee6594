package signaling

import "net/http"

// scheduleRoutes registers the staff endpoints that manage the schedule and
// enrollment (docs/api.md).
func (s *Server) scheduleRoutes(mux *http.ServeMux) {}
