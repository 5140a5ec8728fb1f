import type { Services } from '../../container.js';
import { canAccessProject, type Principal } from '../../core/identity/principal.js';
import { NAMESPACE } from '../../core/projects/projects.js';
import type { Project } from '../../db/entities/project.js';
import { notFound } from '../../errors.js';

/** The project a namespace in a path or filter names; unknown and invisible ones are answered alike (404). */
export async function visibleNamespace(s: Services, p: Principal, namespace: string): Promise<Project> {
  // A name no namespace can have is as missing as an unknown one (and never reaches SQL).
  const project = NAMESPACE.test(namespace) ? await s.projects.byNamespace(namespace) : null;
  if (!project || !canAccessProject(p, project.repositoryIdentifier)) throw notFound(`Namespace ${namespace} not found`);
  return project;
}
