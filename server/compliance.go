package server

import (
	trailv1 "github.com/trailaudit/trail/proto/trail/v1"
)

// complianceService serves trail.v1.ComplianceService. Its methods live
// beside the feature they expose: retention.go, holds.go, reports.go,
// export.go, integrity.go, anomaly.go and subscribe.go.
type complianceService struct {
	trailv1.UnimplementedComplianceServiceServer
	s *Server
}
