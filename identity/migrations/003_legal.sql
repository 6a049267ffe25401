-- Legal persons: the lookups of enterprises by representative, handlers by person, and agents by either side,
-- each in the (created_at, id) order their lists page by.
CREATE INDEX enterprises_representative ON enterprises (representative_id, created_at, id);
CREATE INDEX handlers_person ON handlers (person_id, enterprise_id);
CREATE INDEX handlers_enterprise_listed ON handlers (enterprise_id, created_at, id);
CREATE INDEX agents_elder ON agents (elder_id, created_at, id);
CREATE INDEX agents_agent ON agents (agent_id, created_at, id);
